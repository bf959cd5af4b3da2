"""Method adapters: turn a method card into a runnable Method."""
