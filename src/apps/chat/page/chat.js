// loopchat's web client: one WebSocket to /ws speaking the JSON protocol of
// src/apps/chat/protocol.rs, and a page built with createElement and textContent only.
// Nothing that comes from the network or the user is ever parsed as HTML; images are
// shown only from data: URLs whose type is one of IMAGE_TYPES.
'use strict';

(() => {
  // ---------------------------------------------------------------------------------
  // Settings

  const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 10_000;
  /** Messages and notices kept per conversation. */
  const MAX_ITEMS = 500;
  /** Messages from one sender closer than this are grouped under one name. */
  const GROUP_MS = 5 * 60 * 1000;
  /** A nickname retaken after a reconnect may still be held by our old connection (or, with
   * several servers, by one on a server that died, until the others notice: 15 s at most). */
  const NICK_RETRIES = 12;
  const NICK_RETRY_MS = 1500;
  const STORE = { nick: 'loopchat.nick', rooms: 'loopchat.rooms', active: 'loopchat.active' };
  /** Used until `welcome` says otherwise. */
  const DEFAULT_LIMITS = {
    max_text_bytes: 4096,
    max_image_bytes: 2 * 1024 * 1024,
    image_types: IMAGE_TYPES,
    max_nick_chars: 24,
    max_room_chars: 32,
    history: 50,
  };
  const HELP_TEXT =
    'Commands: /nick NAME · /join ROOM · /leave [ROOM] · /msg USER TEXT · /who [ROOM] · ' +
    '/rooms · /help. Start a message with // to send a text that begins with /.';

  // ---------------------------------------------------------------------------------
  // Elements

  const $ = (id) => document.getElementById(id);
  const ui = {
    app: $('app'),
    sidebar: $('sidebar'),
    sidebarClose: $('sidebar-close'),
    backdrop: $('backdrop'),
    menuButton: $('menu-button'),
    menuBadge: $('menu-badge'),
    roomList: $('room-list'),
    dmList: $('dm-list'),
    dmHint: $('dm-hint'),
    joinForm: $('join-form'),
    joinInput: $('join-input'),
    joinError: $('join-error'),
    roomSuggestions: $('room-suggestions'),
    membersHeading: $('members-heading'),
    memberList: $('member-list'),
    meAvatar: $('me-avatar'),
    meNick: $('me-nick'),
    changeNick: $('change-nick'),
    convTitle: $('conv-title'),
    convSubtitle: $('conv-subtitle'),
    status: $('status'),
    statusText: $('status-text'),
    statusLive: $('status-live'),
    retryButton: $('retry-button'),
    leaveButton: $('leave-button'),
    logWrap: $('log-wrap'),
    log: $('log'),
    emptyState: $('empty-state'),
    jumpButton: $('jump-button'),
    composer: $('composer'),
    fileInput: $('file-input'),
    attachButton: $('attach-button'),
    text: $('text'),
    sendButton: $('send-button'),
    hint: $('composer-hint'),
    nickDialog: $('nick-dialog'),
    nickForm: $('nick-form'),
    nickInput: $('nick-input'),
    nickError: $('nick-error'),
    nickText: $('nick-text'),
    nickTitle: $('nick-title'),
    nickCancel: $('nick-cancel'),
    nickSubmit: $('nick-submit'),
    imageDialog: $('image-dialog'),
    imageDialogImg: $('image-dialog-img'),
    imageDialogCaption: $('image-dialog-caption'),
  };

  // ---------------------------------------------------------------------------------
  // State

  const state = {
    /** The current socket, or null. */
    ws: null,
    /** 'connecting' | 'online' | 'reconnecting' | 'offline' */
    conn: 'connecting',
    /** Whether the server said the chat is split (it lost the other servers). */
    split: false,
    /** Which of the servers (see `socketUrls`) to try next. */
    serverIndex: 0,
    /** Failed attempts since the last welcome, for the backoff. */
    attempt: 0,
    retryAt: 0,
    retryTimer: 0,
    countdownTimer: 0,
    /** Whether a welcome was ever received on this page. */
    everOnline: false,
    /** Between `welcome` and the first join that follows it (the server's auto-join). */
    awaitingAutoJoin: false,
    /** Rooms to rejoin after the auto-join; null when there is nothing to restore. */
    restoreRooms: null,
    /** Rooms whose join notice is not shown, because they are being rejoined. */
    quietJoins: new Set(),
    limits: { ...DEFAULT_LIMITS },
    /** The nickname the server knows us by. */
    nick: '',
    /** The nickname we want (remembered), retaken after every reconnect. */
    wantedNick: load(STORE.nick) || '',
    /** A nick request in flight: { nick, source: 'dialog' | 'auto' | 'command', tries }. */
    nickRequest: null,
    nickRetryTimer: 0,
    /** Whether the nickname dialog was opened on its own once already. */
    askedForNick: false,
    /** key -> conversation */
    convs: new Map(),
    /** The key of the conversation shown, or ''. */
    active: '',
    /** The conversation to show once it exists (after a reload). */
    wantActive: load(STORE.active) || '',
    /** Rooms we are in (or want to be in on reconnect), in the order joined. */
    rooms: loadRooms(),
    /** A room we asked to join and want to switch to when the join arrives. */
    pendingJoin: '',
    /** Whom a /msg went to, lowercased: its conversation opens when it is confirmed. */
    pendingDm: '',
    /** Rooms whose next `members` answers a /who and is printed. */
    pendingWho: new Set(),
    /** Whether the next `rooms` answers a /rooms and is printed. */
    pendingRooms: false,
    lastRoomsRequest: 0,
    /** Whether the log is scrolled to its end (and so follows new messages). */
    stuck: true,
    /** While a history is added: the log is drawn once, at the end. */
    batching: false,
    hintTimer: 0,
    uploadTimer: 0,
    sidebarOpen: false,
  };

  // ---------------------------------------------------------------------------------
  // Small helpers

  /** An element with attributes and children; `text` sets textContent, `class` the
   * class list, `on*` functions listen. Never takes HTML. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'class') el.className = value;
      else if (name === 'text') el.textContent = value;
      else if (name.startsWith('on') && typeof value === 'function') {
        el.addEventListener(name.slice(2), value);
      } else el.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child); // strings become text nodes
    }
    return el;
  }

  const lower = (s) => String(s).toLowerCase();
  const pad2 = (n) => String(n).padStart(2, '0');

  function hhmm(ms) {
    const d = new Date(ms);
    return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  }

  function dayKey(ms) {
    const d = new Date(ms);
    return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
  }

  function dayLabel(ms) {
    const today = new Date();
    const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (dayKey(ms) === dayKey(today.getTime())) return 'Today';
    if (dayKey(ms) === dayKey(yesterday.getTime())) return 'Yesterday';
    return new Date(ms).toLocaleDateString(undefined, {
      weekday: 'long', day: 'numeric', month: 'long', year: 'numeric',
    });
  }

  function humanSize(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  }

  function timeEl(ms) {
    const d = new Date(ms);
    return h('time', {
      class: 'time',
      datetime: d.toISOString(),
      title: d.toLocaleString(),
      text: hhmm(ms),
    });
  }

  /** One of eight colours for a nickname, always the same one. */
  function colorClass(nick) {
    let hash = 0;
    for (const ch of lower(nick)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
    return `c${hash % 8}`;
  }

  function initial(nick) {
    const first = Array.from(String(nick).replace(/^[^\p{L}\p{N}]+/u, ''))[0];
    return (first || '?').toUpperCase();
  }

  function avatar(nick, extra) {
    return h('span', {
      class: `avatar ${colorClass(nick)}${extra ? ` ${extra}` : ''}`,
      'aria-hidden': 'true',
      text: initial(nick),
    });
  }

  const isMe = (nick) => Boolean(state.nick) && lower(nick) === lower(state.nick);

  /** Whether a message from history is ours: also when it was sent under the nickname
   * we are taking back right now (history comes before the server has our nickname). */
  function wasMe(nick) {
    const request = state.nickRequest;
    return isMe(nick) || Boolean(request && request.source === 'auto' && lower(nick) === lower(request.nick));
  }

  function load(key) {
    try {
      return localStorage.getItem(key);
    } catch {
      return null;
    }
  }

  function save(key, value) {
    try {
      if (value === null || value === '') localStorage.removeItem(key);
      else localStorage.setItem(key, value);
    } catch {
      // Storage can be unavailable (private modes); the page works without it.
    }
  }

  function loadRooms() {
    try {
      const rooms = JSON.parse(load(STORE.rooms) || '[]');
      return Array.isArray(rooms) ? rooms.filter((r) => typeof r === 'string' && r) : [];
    } catch {
      return [];
    }
  }

  function saveRooms() {
    save(STORE.rooms, JSON.stringify(state.rooms));
  }

  /** The server's own rules (state.rs), to explain mistakes before sending. */
  function validNick(nick) {
    return nick.length > 0 && Array.from(nick).length <= state.limits.max_nick_chars &&
      /^[\p{Alphabetic}\p{N}._-]+$/u.test(nick);
  }

  function normalRoom(room) {
    return lower(String(room).trim().replace(/^#+/, ''));
  }

  function validRoom(room) {
    return room.length > 0 && Array.from(room).length <= state.limits.max_room_chars &&
      /^[\p{Alphabetic}\p{N}_-]+$/u.test(room);
  }

  const utf8 = new TextEncoder();

  // ---------------------------------------------------------------------------------
  // Conversations

  const roomKey = (room) => `room:${room}`;
  const dmKey = (nick) => `dm:${lower(nick)}`;

  function ensureRoom(room) {
    const key = roomKey(room);
    let conv = state.convs.get(key);
    if (!conv) {
      conv = newConv(key, 'room', room);
      state.convs.set(key, conv);
    }
    return conv;
  }

  function ensureDm(nick) {
    const key = dmKey(nick);
    let conv = state.convs.get(key);
    if (!conv) {
      conv = newConv(key, 'dm', nick);
      state.convs.set(key, conv);
      renderConvLists();
    }
    return conv;
  }

  function newConv(key, kind, name) {
    return {
      key, kind, name,
      items: [],
      seen: new Set(),
      unread: 0,
      members: [],
      lastActivity: Date.now(),
      draft: '',
      /** The id of the newest message seen (rooms), sent back on reconnecting. */
      lastId: 0,
    };
  }

  function convLabel(conv) {
    return conv.kind === 'room' ? `#${conv.name}` : `@${conv.name}`;
  }

  /** Shows a conversation. */
  function activate(key, { focus = true } = {}) {
    const conv = state.convs.get(key);
    if (!conv) return;
    const previous = state.convs.get(state.active);
    if (previous && previous !== conv) previous.draft = ui.text.value;
    if (previous !== conv) {
      ui.text.value = conv.draft || '';
      autoGrow();
    }
    state.active = key;
    state.wantActive = '';
    save(STORE.active, key);
    conv.unread = 0;
    renderAll();
    scrollToEnd();
    closeSidebar();
    if (focus && !coarsePointer()) ui.text.focus();
  }

  function removeConv(key) {
    const conv = state.convs.get(key);
    if (!conv) return;
    state.convs.delete(key);
    if (state.active === key) {
      const next = firstConvKey();
      state.active = '';
      if (next) {
        activate(next, { focus: false });
        return;
      }
      save(STORE.active, '');
    }
    renderAll();
  }

  function firstConvKey() {
    const rooms = sortedConvs('room');
    if (rooms.length) return rooms[0].key;
    const dms = sortedConvs('dm');
    return dms.length ? dms[0].key : '';
  }

  function sortedConvs(kind) {
    const list = Array.from(state.convs.values()).filter((c) => c.kind === kind);
    if (kind === 'room') list.sort((a, b) => a.name.localeCompare(b.name));
    else list.sort((a, b) => b.lastActivity - a.lastActivity);
    return list;
  }

  /** Adds a message or notice to a conversation, in time order, and shows it if the
   * conversation is the active one. Returns false for a message already there. */
  function addItem(conv, item, { countUnread = true } = {}) {
    if (item.key) {
      if (conv.seen.has(item.key)) return false;
      conv.seen.add(item.key);
    }
    const items = conv.items;
    let at = items.length;
    while (at > 0 && items[at - 1].time > item.time) at -= 1;
    items.splice(at, 0, item);
    let trimmed = false;
    while (items.length > MAX_ITEMS) {
      const old = items.shift();
      if (old.key) conv.seen.delete(old.key);
      trimmed = true;
    }
    if (item.kind === 'msg') conv.lastActivity = Math.max(conv.lastActivity, Date.now());
    if (conv.kind === 'room' && Number.isSafeInteger(item.id) && item.id > conv.lastId) {
      conv.lastId = item.id;
    }
    const shown = conv.key === state.active;
    if (item.kind === 'msg' && countUnread && !item.own && !shown) conv.unread += 1;
    if (state.batching) return true; // drawn once at the end
    if (shown) {
      if (at === items.length - 1 && !trimmed) appendToLog(item, items[at - 1]);
      else renderLog();
      if (item.kind === 'msg' && !item.own && !state.stuck) ui.jumpButton.hidden = false;
    }
    if (item.kind === 'msg') renderConvLists();
    return true;
  }

  /** A notice line; in the active conversation unless one is named. */
  function notice(text, { conv, tone = 'info', time, joined } = {}) {
    const target = conv || state.convs.get(state.active);
    if (!target) {
      if (tone === 'error') showHint(text, true);
      return;
    }
    const last = target.items[target.items.length - 1];
    const when = Math.max(time || Date.now(), last ? last.time : 0);
    addItem(target, { kind: 'notice', text, tone, time: when, joined });
  }

  // ---------------------------------------------------------------------------------
  // Rendering

  function renderAll() {
    renderConvLists();
    renderHeader();
    renderMembers();
    renderLog();
    renderComposer();
  }

  function renderConvLists() {
    ui.roomList.replaceChildren(...sortedConvs('room').map(convButton));
    const dms = sortedConvs('dm');
    ui.dmList.replaceChildren(...dms.map(convButton));
    ui.dmHint.hidden = dms.length > 0;
    let hidden = 0;
    for (const conv of state.convs.values()) if (conv.key !== state.active) hidden += conv.unread;
    ui.menuBadge.hidden = hidden === 0;
    ui.menuBadge.textContent = hidden > 99 ? '99+' : String(hidden);
    const active = state.convs.get(state.active);
    const title = active ? `${convLabel(active)} · loopchat` : 'loopchat';
    document.title = hidden ? `(${hidden}) ${title}` : title;
  }

  function convButton(conv) {
    const active = conv.key === state.active;
    const label = conv.kind === 'room'
      ? [h('span', { class: 'conv-sigil', 'aria-hidden': 'true', text: '#' }), h('span', { class: 'conv-name', text: conv.name })]
      : [avatar(conv.name, 'small'), h('span', { class: 'conv-name', text: conv.name })];
    const badge = conv.unread
      ? h('span', {
        class: 'badge',
        text: conv.unread > 99 ? '99+' : String(conv.unread),
        'aria-label': `${conv.unread} unread`,
      })
      : null;
    return h('li', { class: 'conv-item' },
      h('button', {
        type: 'button',
        class: `conv-button${active ? ' active' : ''}${conv.unread ? ' unread' : ''}`,
        'data-key': conv.key,
        'aria-current': active ? 'true' : null,
        title: conv.kind === 'room' ? `#${conv.name}` : `Private conversation with ${conv.name}`,
        onclick: () => activate(conv.key),
      }, ...label, badge));
  }

  function renderHeader() {
    const conv = state.convs.get(state.active);
    ui.leaveButton.hidden = !conv;
    if (!conv) {
      ui.convTitle.textContent = 'loopchat';
      ui.convSubtitle.textContent = state.conn === 'online' ? 'Join a room to start' : '';
      return;
    }
    ui.convTitle.textContent = convLabel(conv);
    if (conv.kind === 'room') {
      const n = conv.members.length;
      ui.convSubtitle.textContent = n ? `${n} ${n === 1 ? 'member' : 'members'} online` : '';
      ui.leaveButton.textContent = 'Leave';
      ui.leaveButton.title = `Leave #${conv.name}`;
    } else {
      ui.convSubtitle.textContent = 'Private conversation';
      ui.leaveButton.textContent = 'Close';
      ui.leaveButton.title = `Close the conversation with ${conv.name}`;
    }
  }

  function renderMembers() {
    const conv = state.convs.get(state.active);
    if (!conv) {
      ui.membersHeading.textContent = 'Online';
      ui.memberList.replaceChildren();
      return;
    }
    const people = conv.kind === 'room' ? conv.members : [state.nick, conv.name];
    ui.membersHeading.textContent = conv.kind === 'room'
      ? `Online in #${conv.name} — ${conv.members.length}`
      : 'In this conversation';
    ui.memberList.replaceChildren(...people.map((nick) => {
      const me = isMe(nick);
      const content = [
        avatar(nick, 'small'),
        h('span', { class: 'member-name', text: nick }),
        me ? h('span', { class: 'member-you', text: 'you' }) : null,
      ];
      return h('li', { class: `member${conv.kind === 'dm' ? ' no-presence' : ''}` }, me
        ? h('span', { class: 'member-button is-me' }, ...content)
        : h('button', {
          type: 'button',
          class: 'member-button',
          'data-nick': nick,
          title: `Send ${nick} a private message`,
          onclick: () => openDm(nick),
        }, ...content));
    }));
  }

  function renderLog() {
    const conv = state.convs.get(state.active);
    ui.emptyState.hidden = Boolean(conv) || state.conn !== 'online';
    if (!conv) {
      ui.log.replaceChildren();
      ui.jumpButton.hidden = true;
      return;
    }
    const nodes = [];
    conv.items.forEach((item, i) => nodes.push(...itemNodes(item, conv.items[i - 1])));
    if (!conv.items.some((item) => item.kind === 'msg')) {
      nodes.unshift(h('li', {
        class: 'log-start',
        text: conv.kind === 'room'
          ? `This is the start of #${conv.name}.`
          : `This is your private conversation with ${conv.name}. Only the two of you see it.`,
      }));
    }
    // A whole conversation redrawn is not news: keep screen readers from reading it out.
    ui.log.setAttribute('aria-live', 'off');
    ui.log.replaceChildren(...nodes);
    setTimeout(() => ui.log.setAttribute('aria-live', 'polite'), 0);
    if (state.stuck) scrollToEnd();
  }

  function appendToLog(item, prev) {
    const follow = state.stuck;
    const start = ui.log.querySelector('.log-start');
    if (start && item.kind === 'msg') start.remove();
    ui.log.append(...itemNodes(item, prev));
    if (follow) scrollToEnd();
  }

  /** The list items for one message or notice (a day line first when the day changes). */
  function itemNodes(item, prev) {
    const nodes = [];
    const newDay = !prev || dayKey(prev.time) !== dayKey(item.time);
    if (newDay) {
      nodes.push(h('li', { class: 'day' }, h('span', { text: dayLabel(item.time) })));
    }
    if (item.kind === 'notice') {
      nodes.push(h('li', { class: `notice tone-${item.tone}` },
        h('span', { class: 'notice-text', text: item.text }), ' ', timeEl(item.time)));
      return nodes;
    }
    const grouped = !newDay && prev && prev.kind === 'msg' && lower(prev.from) === lower(item.from) &&
      item.time - prev.time < GROUP_MS;
    const li = h('li', {
      class: `msg${item.own ? ' own' : ''}${grouped ? ' grouped' : ''}${item.image ? ' has-image' : ''}`,
      'data-id': item.id,
      'data-from': item.from,
    });
    if (!item.own) {
      li.append(item.dm
        ? avatar(item.from)
        : h('button', {
          type: 'button',
          class: `avatar-button`,
          tabindex: '-1',
          'aria-hidden': 'true',
          title: `Send ${item.from} a private message`,
          onclick: () => openDm(item.from),
        }, avatar(item.from)));
    }
    const sender = item.own || item.dm
      ? h('span', { class: 'sender', text: item.from })
      : h('button', {
        type: 'button',
        class: `sender ${colorClass(item.from)}`,
        title: `Send ${item.from} a private message`,
        onclick: () => openDm(item.from),
        text: item.from,
      });
    const meta = h('div', { class: 'meta' }, sender, timeEl(item.time));
    const bubble = h('div', { class: 'bubble', title: hhmm(item.time) },
      item.image ? imageNode(item) : textNode(item.text));
    li.append(h('div', { class: 'msg-body' }, meta, bubble));
    return [...nodes, li];
  }

  /** Text with http(s) links made clickable; everything else stays text. */
  function textNode(text) {
    const el = h('div', { class: 'text' });
    const re = /\bhttps?:\/\/[^\s<>"']+/gi;
    let last = 0;
    for (const match of text.matchAll(re)) {
      let url = match[0].replace(/[.,;:!?)\]]+$/, '');
      const start = match.index;
      if (start > last) el.append(text.slice(last, start));
      let href = null;
      try {
        const parsed = new URL(url);
        if (parsed.protocol === 'http:' || parsed.protocol === 'https:') href = parsed.href;
      } catch {
        href = null;
      }
      if (href) {
        el.append(h('a', { href, target: '_blank', rel: 'noopener noreferrer nofollow', text: url }));
      } else {
        el.append(url);
      }
      last = start + url.length;
    }
    if (last < text.length) el.append(text.slice(last));
    return el;
  }

  /** The image of a message, made once and kept, so that redrawing the log does not
   * decode it again. */
  function imageNode(item) {
    if (!item.node) item.node = makeImageNode(item);
    return item.node;
  }

  function makeImageNode(item) {
    const { mime, data, size } = item.image;
    const caption = h('figcaption', { class: 'image-caption' },
      `${mime.replace('image/', '').toUpperCase()} · ${humanSize(size)}`);
    const img = h('img', {
      class: 'chat-image',
      alt: `Image from ${item.from}`,
      decoding: 'async',
    });
    img.addEventListener('load', () => {
      if (state.stuck) scrollToEnd();
    });
    img.addEventListener('error', () => {
      img.replaceWith(h('span', { class: 'image-broken', text: 'This image could not be shown.' }));
    });
    img.src = `data:${mime};base64,${data}`;
    const open = h('button', {
      type: 'button',
      class: 'image-button',
      'aria-label': `Open the image from ${item.from} larger`,
      onclick: () => openImage(img.src, `From ${item.from} at ${hhmm(item.time)}`),
    }, img);
    return h('figure', { class: 'image' }, open, caption);
  }

  function renderComposer() {
    const conv = state.convs.get(state.active);
    const online = state.conn === 'online';
    ui.text.placeholder = !conv
      ? (online ? 'Join a room to start chatting' : 'Connecting…')
      : online ? `Message ${convLabel(conv)}` : `Message ${convLabel(conv)} (not connected)`;
    ui.composer.classList.toggle('offline', !online);
    ui.attachButton.disabled = !conv;
    ui.meNick.textContent = state.nick || '…';
    ui.meAvatar.textContent = initial(state.nick || '?');
    ui.meAvatar.className = `avatar ${colorClass(state.nick || '?')}`;
  }

  // ---------------------------------------------------------------------------------
  // Scrolling

  function atBottom() {
    const el = ui.logWrap;
    return el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  }

  function scrollToEnd() {
    ui.logWrap.scrollTop = ui.logWrap.scrollHeight;
    state.stuck = true;
    ui.jumpButton.hidden = true;
  }

  ui.logWrap.addEventListener('scroll', () => {
    state.stuck = atBottom();
    if (state.stuck) ui.jumpButton.hidden = true;
  }, { passive: true });

  ui.jumpButton.addEventListener('click', () => {
    scrollToEnd();
    ui.text.focus();
  });

  // Keep following the end when the layout changes size (phone keyboards, rotation).
  new ResizeObserver(() => {
    if (state.stuck) scrollToEnd();
  }).observe(ui.logWrap);

  // ---------------------------------------------------------------------------------
  // Connection

  /**
   * The servers to try, in turn: this page's own, or the list in the page's `?ws=` (for
   * instances sharing a Redis without a load balancer in front:
   * `?ws=ws://host-a/ws,ws://host-b/ws`). Each reconnect tries the next.
   */
  function socketUrls() {
    const listed = new URLSearchParams(location.search).get('ws');
    const urls = (listed || '').split(',').map((u) => u.trim())
      .filter((u) => /^wss?:\/\//.test(u));
    if (urls.length) return urls;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return [`${scheme}//${location.host}/ws`];
  }

  /**
   * The server to connect to now, with the id of the last message seen in each room, so
   * that the history on arrival holds exactly what was missed.
   */
  function socketUrl() {
    const urls = socketUrls();
    const base = urls[state.serverIndex % urls.length];
    // Each `room:id` is encoded on its own (a room name may be any letter), and the
    // commas between them are left as they are: the server splits the list at them.
    const after = [];
    for (const conv of state.convs.values()) {
      if (conv.kind === 'room' && conv.lastId > 0) {
        after.push(`${encodeURIComponent(conv.name)}:${conv.lastId}`);
      }
    }
    if (!after.length) return base;
    return `${base}${base.includes('?') ? '&' : '?'}after=${after.join(',')}`;
  }

  function connect() {
    clearTimeout(state.retryTimer);
    clearInterval(state.countdownTimer);
    if (state.ws) return;
    setConn('connecting');
    let ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    ws.addEventListener('message', (e) => {
      if (state.ws !== ws || typeof e.data !== 'string') return;
      let event;
      try {
        event = JSON.parse(e.data);
      } catch {
        return;
      }
      if (event && typeof event === 'object' && typeof event.type === 'string') {
        try {
          handleEvent(event);
        } catch (err) {
          console.warn('loopchat: could not handle', event.type, err);
        }
      }
    });
    ws.addEventListener('close', () => {
      if (state.ws !== ws) return;
      state.ws = null;
      // The next attempt goes to the next server, if there are several.
      state.serverIndex += 1;
      const wasOnline = state.conn === 'online';
      if (wasOnline) {
        for (const conv of state.convs.values()) {
          if (conv.kind === 'room') conv.members = [];
        }
        notice('Connection lost. Reconnecting…', { tone: 'error' });
        renderAll();
      }
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    clearTimeout(state.retryTimer);
    clearInterval(state.countdownTimer);
    if (navigator.onLine === false) {
      setConn('offline');
      return;
    }
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** state.attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5)); // ±25 % jitter
    state.attempt += 1;
    state.retryAt = Date.now() + delay;
    state.retryTimer = setTimeout(connect, delay);
    state.countdownTimer = setInterval(renderStatus, 250);
    setConn('reconnecting');
  }

  function reconnectNow() {
    if (state.ws) return;
    state.attempt = 0;
    connect();
  }

  function setConn(conn) {
    const changed = state.conn !== conn;
    state.conn = conn;
    renderStatus();
    if (changed) {
      ui.statusLive.textContent = {
        online: 'Connected.',
        connecting: 'Connecting.',
        reconnecting: 'Connection lost; reconnecting.',
        offline: 'Offline.',
      }[conn];
      renderComposer();
      renderHeader();
      ui.emptyState.hidden = Boolean(state.convs.get(state.active)) || conn !== 'online';
    }
  }

  function renderStatus() {
    let text;
    switch (state.conn) {
      case 'online': text = state.split ? 'Online (chat split)' : 'Online'; break;
      case 'connecting': text = 'Connecting…'; break;
      case 'reconnecting': {
        const s = Math.max(1, Math.ceil((state.retryAt - Date.now()) / 1000));
        text = `Reconnecting in ${s} s`;
        break;
      }
      default: text = 'Offline';
    }
    ui.status.dataset.state = state.conn;
    if (ui.statusText.textContent !== text) ui.statusText.textContent = text;
    ui.status.title = state.conn === 'offline' ? 'Your device is offline; waiting for the network' : text;
    ui.retryButton.hidden = !(state.conn === 'reconnecting' || state.conn === 'offline');
  }

  function send(request) {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || state.conn !== 'online') return false;
    ws.send(JSON.stringify(request));
    return true;
  }

  ui.retryButton.addEventListener('click', reconnectNow);
  window.addEventListener('online', () => {
    if (!state.ws) reconnectNow();
  });
  window.addEventListener('offline', () => {
    if (!state.ws) {
      clearTimeout(state.retryTimer);
      clearInterval(state.countdownTimer);
      setConn('offline');
    }
  });

  // ---------------------------------------------------------------------------------
  // Server events

  function handleEvent(ev) {
    switch (ev.type) {
      case 'welcome': return onWelcome(ev);
      case 'join': return onJoin(ev);
      case 'leave': return onLeave(ev);
      case 'nick': return onNick(ev);
      case 'message': return onMessage(ev, {});
      case 'private': return onPrivate(ev);
      case 'image': return onImage(ev, {});
      case 'members': return onMembers(ev);
      case 'history': return onHistory(ev);
      case 'rooms': return onRooms(ev);
      case 'error': return onError(ev);
      case 'split': return onSplit(true, ev);
      case 'whole': return onSplit(false, ev);
      default: return undefined;
    }
  }

  /** The chat split (this server lost the others) or became whole again. */
  function onSplit(split, ev) {
    if (state.split === split) return;
    state.split = split;
    notice(split
      ? 'The chat is split: only people on this server hear you until it is whole again.'
      : 'The chat is whole again.', { tone: split ? 'error' : 'ok', time: ev.time });
    renderStatus();
  }

  function onWelcome(ev) {
    state.split = false;
    const reconnected = state.everOnline;
    state.everOnline = true;
    state.attempt = 0;
    clearTimeout(state.nickRetryTimer);
    state.nickRequest = null;
    state.limits = { ...DEFAULT_LIMITS, ...(ev.limits || {}) };
    ui.nickInput.maxLength = state.limits.max_nick_chars;
    state.nick = String(ev.nick || '');
    setConn('online');
    state.awaitingAutoJoin = true;
    state.restoreRooms = state.rooms.length ? state.rooms.slice() : null;
    state.quietJoins = new Set(state.restoreRooms || []);
    if (reconnected) notice('Reconnected.', { tone: 'ok' });
    if (state.wantedNick && state.wantedNick !== state.nick) {
      requestNick(state.wantedNick, 'auto');
    } else if (!state.wantedNick && !state.askedForNick) {
      state.askedForNick = true;
      openNickDialog();
    }
    requestRooms(false);
    renderAll();
  }

  function onJoin(ev) {
    const room = String(ev.room);
    const time = ev.time || Date.now();
    if (isMe(ev.nick)) {
      if (state.awaitingAutoJoin) {
        state.awaitingAutoJoin = false;
        const restore = state.restoreRooms;
        state.restoreRooms = null;
        if (restore && !restore.includes(room)) {
          // We had left the room the server puts everyone in: leave it again.
          send({ type: 'leave', room });
          state.quietJoins.add(room);
        } else {
          joinedRoom(room, ev.nick, time);
        }
        for (const other of restore || []) {
          if (other === room) continue;
          const conv = state.convs.get(roomKey(other));
          const after = conv && conv.lastId > 0 ? conv.lastId : undefined;
          send({ type: 'join', room: other, after });
        }
        return;
      }
      joinedRoom(room, ev.nick, time);
      return;
    }
    const conv = state.convs.get(roomKey(room));
    if (!conv) return;
    addMember(conv, ev.nick);
    notice(`${ev.nick} joined`, { conv, tone: 'join', time, joined: ev.nick });
    if (conv.key === state.active) {
      renderMembers();
      renderHeader();
    }
  }

  function joinedRoom(room, nick, time) {
    const conv = ensureRoom(room);
    conv.joined = true;
    addMember(conv, nick);
    if (!state.rooms.includes(room)) {
      state.rooms.push(room);
      saveRooms();
    }
    if (!state.quietJoins.delete(room)) notice(`You joined #${room}`, { conv, tone: 'join', time });
    if (state.pendingJoin === room) {
      state.pendingJoin = '';
      activate(conv.key);
    } else if (!state.active || state.wantActive === conv.key) {
      activate(conv.key, { focus: false });
    } else {
      renderAll();
    }
  }

  function onLeave(ev) {
    const room = String(ev.room);
    const conv = state.convs.get(roomKey(room));
    if (isMe(ev.nick)) {
      state.rooms = state.rooms.filter((r) => r !== room);
      saveRooms();
      if (conv && !state.quietJoins.has(room)) removeConv(conv.key);
      state.quietJoins.delete(room);
      return;
    }
    if (!conv) return;
    conv.members = conv.members.filter((m) => lower(m) !== lower(ev.nick));
    const how = ev.reason === 'disconnected' ? 'disconnected' : 'left';
    // Our own old connection, dropped after we came back (with several servers, when the
    // others notice its server died): not news to us.
    const ghost = how === 'disconnected' && state.wantedNick && lower(ev.nick) === lower(state.wantedNick);
    if (!ghost) notice(`${ev.nick} ${how}`, { conv, tone: 'leave', time: ev.time });
    if (conv.key === state.active) {
      renderMembers();
      renderHeader();
    }
  }

  function onNick(ev) {
    const { old, new: now } = ev;
    const time = ev.time || Date.now();
    if (typeof old !== 'string' || typeof now !== 'string') return;
    const mine = isMe(old);
    if (mine) {
      state.nick = now;
      const request = state.nickRequest;
      clearTimeout(state.nickRetryTimer);
      state.nickRequest = null;
      state.wantedNick = now;
      save(STORE.nick, now);
      if (ui.nickDialog.open) closeNickDialog();
      if (request && request.source === 'auto') {
        // Quietly taking back our nickname after a reconnect.
      } else {
        notice(`You are now known as ${now}`, { tone: 'ok', time });
      }
    }
    for (const conv of state.convs.values()) {
      if (conv.kind !== 'room') continue;
      const i = conv.members.findIndex((m) => lower(m) === lower(old));
      if (i < 0) continue;
      conv.members.splice(i, 1);
      addMember(conv, now);
      if (!mine && !renameJoin(conv, old, now, time)) {
        notice(`${old} is now known as ${now}`, { conv, tone: 'info', time });
      }
    }
    const dm = state.convs.get(dmKey(old));
    if (dm && !mine) {
      state.convs.delete(dm.key);
      const existing = state.convs.get(dmKey(now));
      if (!existing) {
        dm.key = dmKey(now);
        dm.name = now;
        state.convs.set(dm.key, dm);
        if (state.active === dmKey(old)) state.active = dm.key;
        notice(`${old} is now known as ${now}`, { conv: dm, time });
      }
    }
    renderAll();
  }

  /** Someone who joins takes their nickname right after (the server names everyone
   * guest-N first): "guest-7 joined" becomes "bob joined" rather than two lines. */
  function renameJoin(conv, old, now, time) {
    const last = conv.items[conv.items.length - 1];
    if (!last || last.kind !== 'notice' || last.joined !== old || time - last.time > 10_000) return false;
    last.joined = now;
    last.text = `${now} joined`;
    if (conv.key === state.active) renderLog();
    return true;
  }

  function addMember(conv, nick) {
    if (conv.members.some((m) => lower(m) === lower(nick))) return;
    conv.members.push(nick);
    conv.members.sort((a, b) => lower(a).localeCompare(lower(b)));
  }

  /** A `message` event, live or from history. */
  function onMessage(ev, { history = false, restoring = false }) {
    if (typeof ev.text !== 'string' || typeof ev.from !== 'string') return;
    const conv = state.convs.get(roomKey(String(ev.room)));
    if (!conv) return;
    addItem(conv, {
      kind: 'msg',
      key: `${ev.id}:${ev.time}`,
      id: ev.id,
      from: ev.from,
      text: ev.text,
      time: ev.time || Date.now(),
      own: history ? wasMe(ev.from) : isMe(ev.from),
    }, { countUnread: !history || restoring });
  }

  function onPrivate(ev) {
    if (typeof ev.text !== 'string' || typeof ev.from !== 'string' || typeof ev.to !== 'string') return;
    const own = isMe(ev.from);
    const peer = own ? ev.to : ev.from;
    const conv = ensureDm(peer);
    conv.name = peer;
    if (own && state.pendingDm === lower(peer)) {
      state.pendingDm = '';
      activate(conv.key);
    }
    addItem(conv, {
      kind: 'msg',
      key: `${ev.id}:${ev.time}`,
      id: ev.id,
      from: ev.from,
      text: ev.text,
      time: ev.time || Date.now(),
      own,
      dm: true,
    });
  }

  /** An `image` event, live or from history, for a room or private. */
  function onImage(ev, { history = false, restoring = false }) {
    if (typeof ev.from !== 'string') return;
    const own = history ? wasMe(ev.from) : isMe(ev.from);
    let conv;
    if (typeof ev.room === 'string') conv = state.convs.get(roomKey(ev.room));
    else if (typeof ev.to === 'string') conv = ensureDm(own ? ev.to : ev.from);
    if (!conv) return;
    if (own) uploadFinished();
    const mime = String(ev.mime);
    const data = typeof ev.data === 'string' ? ev.data : '';
    const item = {
      kind: 'msg',
      key: `${ev.id}:${ev.time}`,
      id: ev.id,
      from: ev.from,
      time: ev.time || Date.now(),
      own,
      dm: conv.kind === 'dm',
    };
    if (IMAGE_TYPES.includes(mime) && data && /^[A-Za-z0-9+/]+={0,2}$/.test(data)) {
      item.image = { mime, data, size: Number(ev.size) || Math.floor((data.length * 3) / 4) };
    } else {
      item.text = '(an image that cannot be shown here)';
    }
    addItem(conv, item, { countUnread: !history || restoring });
  }

  function onMembers(ev) {
    const conv = state.convs.get(roomKey(String(ev.room)));
    if (!Array.isArray(ev.members)) return;
    if (state.pendingWho.delete(String(ev.room))) {
      const n = ev.members.length;
      notice(`In #${ev.room} (${n}): ${ev.members.join(', ')}`);
    }
    if (!conv) return;
    conv.members = ev.members.filter((m) => typeof m === 'string');
    conv.members.sort((a, b) => lower(a).localeCompare(lower(b)));
    if (conv.key === state.active) {
      renderMembers();
      renderHeader();
    }
  }

  function onHistory(ev) {
    const conv = state.convs.get(roomKey(String(ev.room)));
    if (!conv || !Array.isArray(ev.messages)) return;
    // After a reconnect, messages we had not seen yet count as unread.
    const restoring = conv.items.some((item) => item.kind === 'msg');
    state.batching = true;
    try {
      for (const message of ev.messages) {
        if (!message || typeof message !== 'object') continue;
        if (message.type === 'message') onMessage(message, { history: true, restoring });
        else if (message.type === 'image') onImage(message, { history: true, restoring });
      }
    } finally {
      state.batching = false;
    }
    renderConvLists();
    if (conv.key === state.active) renderLog();
  }

  function onRooms(ev) {
    if (!Array.isArray(ev.rooms)) return;
    const rooms = ev.rooms.filter((r) => r && typeof r.name === 'string');
    ui.roomSuggestions.replaceChildren(...rooms.map((r) =>
      h('option', { value: r.name, label: `${r.members} online` })));
    if (state.pendingRooms) {
      state.pendingRooms = false;
      const list = rooms.map((r) => `#${r.name} (${r.members})`).join(', ');
      notice(rooms.length ? `Rooms: ${list}` : 'There are no rooms.');
    }
  }

  const FRIENDLY = {
    rate_limited: 'You are sending too fast, so that last one was dropped. Wait a moment.',
    image_too_large: null, // the server's message names both sizes
    not_in_room: null,
    unknown_user: null,
  };

  function onError(ev) {
    const code = String(ev.code || 'error');
    const message = typeof ev.message === 'string' ? ev.message : code;
    if ((code === 'nick_taken' || code === 'nick_invalid') && state.nickRequest) {
      nickFailed(code, message);
      return;
    }
    if (code.startsWith('image_')) uploadFinished();
    if (code === 'unknown_user') state.pendingDm = '';
    notice(FRIENDLY[code] || message, { tone: 'error' });
  }

  // ---------------------------------------------------------------------------------
  // Nicknames

  function requestNick(nick, source, tries = 1) {
    clearTimeout(state.nickRetryTimer);
    state.nickRequest = { nick, source, tries };
    if (!send({ type: 'nick', nick })) {
      state.nickRequest = null;
      return false;
    }
    return true;
  }

  function nickFailed(code, message) {
    const request = state.nickRequest;
    state.nickRequest = null;
    if (request.source === 'auto' && code === 'nick_taken' && request.tries < NICK_RETRIES) {
      // Perhaps our previous connection still holds it; the server drops it shortly.
      state.nickRetryTimer = setTimeout(
        () => requestNick(request.nick, 'auto', request.tries + 1),
        NICK_RETRY_MS,
      );
      return;
    }
    if (request.source === 'command') {
      notice(message, { tone: 'error' });
      return;
    }
    const why = code === 'nick_taken'
      ? `“${request.nick}” is taken. Choose another nickname.`
      : message;
    openNickDialog({ error: why, value: request.nick });
  }

  function openNickDialog({ error = '', value } = {}) {
    ui.nickInput.value = value !== undefined ? value : (state.wantedNick || '');
    ui.nickError.textContent = error;
    ui.nickInput.setAttribute('aria-invalid', error ? 'true' : 'false');
    ui.nickCancel.textContent = state.nick && !state.wantedNick ? `Stay ${state.nick}` : 'Cancel';
    ui.nickSubmit.disabled = false;
    ui.nickSubmit.textContent = state.everOnline && state.wantedNick ? 'Change nickname' : 'Start chatting';
    ui.nickTitle.textContent = state.wantedNick ? 'Change your nickname' : 'Choose a nickname';
    if (!ui.nickDialog.open) ui.nickDialog.showModal();
    ui.nickInput.focus();
    ui.nickInput.select();
  }

  function closeNickDialog() {
    if (ui.nickDialog.open) ui.nickDialog.close();
    ui.nickSubmit.disabled = false;
    if (!coarsePointer()) ui.text.focus();
  }

  ui.nickForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const nick = ui.nickInput.value.trim();
    const error = (text) => {
      ui.nickError.textContent = text;
      ui.nickInput.setAttribute('aria-invalid', 'true');
      ui.nickInput.focus();
    };
    if (!nick) return error('Type a nickname.');
    if (!validNick(nick)) {
      return error(`Use 1 to ${state.limits.max_nick_chars} letters, digits, “-”, “_” or “.” (no spaces).`);
    }
    if (nick === state.nick) {
      state.wantedNick = nick;
      save(STORE.nick, nick);
      closeNickDialog();
      return undefined;
    }
    if (!requestNick(nick, 'dialog')) {
      // Not connected: take it when we are.
      state.wantedNick = nick;
      save(STORE.nick, nick);
      closeNickDialog();
      showHint(`You will be ${nick} once connected.`);
      return undefined;
    }
    ui.nickError.textContent = '';
    ui.nickInput.setAttribute('aria-invalid', 'false');
    ui.nickSubmit.disabled = true;
    ui.nickSubmit.textContent = 'Checking…';
    return undefined;
  });

  ui.nickCancel.addEventListener('click', () => {
    if (state.nickRequest && state.nickRequest.source === 'dialog') state.nickRequest = null;
    closeNickDialog();
  });
  ui.nickDialog.addEventListener('cancel', () => {
    if (state.nickRequest && state.nickRequest.source === 'dialog') state.nickRequest = null;
    ui.nickSubmit.disabled = false;
  });
  ui.changeNick.addEventListener('click', () => openNickDialog());

  // ---------------------------------------------------------------------------------
  // Rooms and private conversations

  function joinRoom(raw) {
    const room = normalRoom(raw);
    if (!validRoom(room)) {
      return `A room name is 1 to ${state.limits.max_room_chars} letters, digits, “-” or “_”.`;
    }
    const conv = state.convs.get(roomKey(room));
    if (conv) {
      activate(conv.key);
      return '';
    }
    if (!send({ type: 'join', room })) return 'Not connected; try again in a moment.';
    state.pendingJoin = room;
    return '';
  }

  function leaveConv(key) {
    const conv = state.convs.get(key);
    if (!conv) return;
    if (conv.kind === 'dm') {
      removeConv(key);
      return;
    }
    if (!send({ type: 'leave', room: conv.name })) {
      showHint('Not connected; you can leave once the connection is back.', true);
    }
  }

  function openDm(nick) {
    if (isMe(nick)) return;
    const conv = ensureDm(nick);
    activate(conv.key);
  }

  function requestRooms(print) {
    if (print) state.pendingRooms = true;
    if (send({ type: 'rooms' })) state.lastRoomsRequest = Date.now();
  }

  ui.joinForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const error = joinRoom(ui.joinInput.value);
    ui.joinError.textContent = error;
    ui.joinInput.setAttribute('aria-invalid', error ? 'true' : 'false');
    if (!error) ui.joinInput.value = '';
  });
  ui.joinInput.addEventListener('input', () => {
    ui.joinError.textContent = '';
    ui.joinInput.removeAttribute('aria-invalid');
  });
  ui.joinInput.addEventListener('focus', () => {
    if (Date.now() - state.lastRoomsRequest > 5000) requestRooms(false);
  });
  ui.leaveButton.addEventListener('click', () => leaveConv(state.active));

  // ---------------------------------------------------------------------------------
  // Composing

  function showHint(text, error = false) {
    clearTimeout(state.hintTimer);
    ui.hint.textContent = text;
    ui.hint.classList.toggle('error', error);
    if (text) state.hintTimer = setTimeout(() => showHint(''), 6000);
  }

  function autoGrow() {
    ui.text.style.height = 'auto';
    ui.text.style.height = `${Math.min(ui.text.scrollHeight, 180)}px`;
  }

  /** Carries out what was typed; returns true if the text box may be cleared. */
  function submitText(raw) {
    const text = raw.replace(/\s+$/, '');
    if (!text.trim()) return false;
    if (text.startsWith('/') && !text.startsWith('//')) return runCommand(text);
    const body = text.startsWith('//') ? text.slice(1) : text;
    return sendText(state.convs.get(state.active), body);
  }

  function sendText(conv, text) {
    if (!conv) {
      showHint('Join a room first.', true);
      return false;
    }
    const bytes = utf8.encode(text).length;
    if (bytes > state.limits.max_text_bytes) {
      showHint(`That message is too long (${bytes} of at most ${state.limits.max_text_bytes} bytes).`, true);
      return false;
    }
    const request = conv.kind === 'room'
      ? { type: 'message', room: conv.name, text }
      : { type: 'private', to: conv.name, text };
    if (!send(request)) {
      showHint('Not connected, so nothing was sent. Your text is kept.', true);
      return false;
    }
    return true;
  }

  function runCommand(line) {
    const [, name = '', rest = ''] = /^\/(\S*)\s*([\s\S]*)$/.exec(line) || [];
    const arg = rest.trim();
    const conv = state.convs.get(state.active);
    const online = () => {
      if (state.conn === 'online') return true;
      showHint('Not connected; try again in a moment.', true);
      return false;
    };
    switch (lower(name)) {
      case 'nick': {
        if (!arg) {
          openNickDialog();
          return true;
        }
        if (!validNick(arg)) {
          showHint(`A nickname is 1 to ${state.limits.max_nick_chars} letters, digits, “-”, “_” or “.”.`, true);
          return false;
        }
        if (!online()) return false;
        requestNick(arg, 'command');
        return true;
      }
      case 'join': {
        if (!arg) {
          showHint('Usage: /join ROOM', true);
          return false;
        }
        const error = joinRoom(arg);
        if (error) showHint(error, true);
        return !error;
      }
      case 'leave':
      case 'part': {
        const key = arg ? roomKey(normalRoom(arg)) : state.active;
        if (!state.convs.has(key)) {
          showHint(arg ? `You are not in #${normalRoom(arg)}.` : 'Nothing to leave.', true);
          return false;
        }
        leaveConv(key);
        return true;
      }
      case 'msg':
      case 'query': {
        const m = /^(\S+)\s+([\s\S]+)$/.exec(arg);
        if (!m) {
          if (arg && !/\s/.test(arg)) {
            openDm(arg);
            return true;
          }
          showHint('Usage: /msg USER TEXT', true);
          return false;
        }
        const peer = m[1].replace(/^@/, '');
        if (!online()) return false;
        if (isMe(peer)) {
          showHint('That is you.', true);
          return false;
        }
        const existing = state.convs.get(dmKey(peer));
        if (!sendText(existing || newConv(dmKey(peer), 'dm', peer), m[2])) return false;
        // Switch to it when the server confirms (it answers unknown_user otherwise).
        if (existing) activate(existing.key);
        else state.pendingDm = lower(peer);
        return true;
      }
      case 'who':
      case 'names': {
        const room = arg ? normalRoom(arg) : conv && conv.kind === 'room' ? conv.name : '';
        if (!room) {
          showHint('Usage: /who ROOM', true);
          return false;
        }
        if (!online()) return false;
        state.pendingWho.add(room);
        send({ type: 'who', room });
        return true;
      }
      case 'rooms':
      case 'list':
        if (!online()) return false;
        requestRooms(true);
        return true;
      case 'help':
        notice(HELP_TEXT);
        return true;
      default:
        showHint(`Unknown command /${name}. Type /help for the list.`, true);
        return false;
    }
  }

  ui.composer.addEventListener('submit', (e) => {
    e.preventDefault();
    if (submitText(ui.text.value)) {
      ui.text.value = '';
      const conv = state.convs.get(state.active);
      if (conv) conv.draft = '';
      autoGrow();
      showHint('');
      scrollToEnd();
    }
    ui.text.focus();
  });

  ui.text.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      ui.composer.requestSubmit();
    }
  });
  ui.text.addEventListener('input', autoGrow);

  // ---------------------------------------------------------------------------------
  // Images

  function uploadFinished() {
    clearTimeout(state.uploadTimer);
    if (ui.hint.dataset.upload) {
      delete ui.hint.dataset.upload;
      showHint('');
    }
  }

  function sendImageFile(file) {
    const conv = state.convs.get(state.active);
    if (!conv) {
      showHint('Join a room first.', true);
      return;
    }
    const types = Array.isArray(state.limits.image_types) ? state.limits.image_types : IMAGE_TYPES;
    if (file.type && !types.includes(file.type)) {
      notice(`“${file.name || 'That file'}” is not an image that can be sent: use PNG, JPEG, GIF or WebP.`, { tone: 'error' });
      return;
    }
    const max = state.limits.max_image_bytes;
    if (file.size > max) {
      notice(`“${file.name || 'That image'}” is ${humanSize(file.size)}, over the ${humanSize(max)} limit for images. Try a smaller one.`, { tone: 'error' });
      return;
    }
    if (file.size === 0) {
      notice(`“${file.name || 'That image'}” is empty.`, { tone: 'error' });
      return;
    }
    if (state.conn !== 'online') {
      showHint('Not connected, so the image was not sent.', true);
      return;
    }
    const reader = new FileReader();
    reader.addEventListener('load', () => {
      const url = String(reader.result);
      const comma = url.indexOf(',');
      const data = comma >= 0 ? url.slice(comma + 1) : url;
      const request = conv.kind === 'room'
        ? { type: 'image', room: conv.name, data }
        : { type: 'image', to: conv.name, data };
      if (!send(request)) {
        showHint('Not connected, so the image was not sent.', true);
        return;
      }
      showHint(`Sending image (${humanSize(file.size)})…`);
      ui.hint.dataset.upload = '1';
      clearTimeout(state.uploadTimer);
      state.uploadTimer = setTimeout(uploadFinished, 20_000);
    });
    reader.addEventListener('error', () => {
      notice(`Could not read “${file.name || 'the image'}”.`, { tone: 'error' });
    });
    reader.readAsDataURL(file);
  }

  function sendImageFiles(files) {
    const images = Array.from(files || []).slice(0, 5);
    for (const file of images) sendImageFile(file);
  }

  ui.attachButton.addEventListener('click', () => ui.fileInput.click());
  ui.fileInput.addEventListener('change', () => {
    sendImageFiles(ui.fileInput.files);
    ui.fileInput.value = '';
    ui.text.focus();
  });

  document.addEventListener('paste', (e) => {
    if (ui.nickDialog.open || e.target === ui.joinInput) return;
    const files = Array.from((e.clipboardData && e.clipboardData.files) || [])
      .filter((f) => f.type.startsWith('image/'));
    if (!files.length) return;
    e.preventDefault();
    sendImageFiles(files);
  });

  let dragDepth = 0;
  const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes('Files');
  ui.logWrap.parentElement.addEventListener('dragenter', (e) => {
    if (!hasFiles(e)) return;
    dragDepth += 1;
    ui.app.classList.add('dragging');
  });
  ui.logWrap.parentElement.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) ui.app.classList.remove('dragging');
  });
  ui.logWrap.parentElement.addEventListener('dragover', (e) => {
    if (hasFiles(e)) e.preventDefault();
  });
  ui.logWrap.parentElement.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth = 0;
    ui.app.classList.remove('dragging');
    sendImageFiles(e.dataTransfer.files);
  });

  function openImage(src, caption) {
    if (!/^data:image\/(png|jpeg|gif|webp);base64,/.test(src)) return;
    ui.imageDialogImg.src = src;
    ui.imageDialogImg.alt = caption;
    ui.imageDialogCaption.textContent = caption;
    ui.imageDialog.showModal();
  }
  ui.imageDialog.addEventListener('click', (e) => {
    if (e.target === ui.imageDialog) ui.imageDialog.close();
  });
  ui.imageDialog.addEventListener('close', () => {
    ui.imageDialogImg.removeAttribute('src');
  });

  // ---------------------------------------------------------------------------------
  // The sidebar on narrow screens

  const narrow = window.matchMedia('(max-width: 760px)');

  function coarsePointer() {
    return window.matchMedia('(pointer: coarse)').matches;
  }

  function openSidebar() {
    state.sidebarOpen = true;
    ui.app.classList.add('sidebar-open');
    ui.menuButton.setAttribute('aria-expanded', 'true');
    const current = ui.sidebar.querySelector('.conv-button.active') || ui.sidebarClose;
    current.focus();
  }

  function closeSidebar() {
    if (!state.sidebarOpen) return;
    state.sidebarOpen = false;
    ui.app.classList.remove('sidebar-open');
    ui.menuButton.setAttribute('aria-expanded', 'false');
  }

  ui.menuButton.addEventListener('click', () => (state.sidebarOpen ? closeSidebar() : openSidebar()));
  ui.sidebarClose.addEventListener('click', () => {
    closeSidebar();
    ui.menuButton.focus();
  });
  ui.backdrop.addEventListener('click', closeSidebar);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && state.sidebarOpen) {
      closeSidebar();
      ui.menuButton.focus();
    }
  });
  narrow.addEventListener('change', () => {
    if (!narrow.matches) closeSidebar();
  });

  // ---------------------------------------------------------------------------------
  // Start

  renderAll();
  renderStatus();
  connect();
})();
