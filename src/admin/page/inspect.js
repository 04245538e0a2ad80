// The live page arrives with the inspector.
