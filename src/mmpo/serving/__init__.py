"""``mmpo serve``'s HTTP side: what a chat-completions request may ask for, and a handler that bounds it."""
