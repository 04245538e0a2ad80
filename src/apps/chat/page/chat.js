// The chat page script: being written.
