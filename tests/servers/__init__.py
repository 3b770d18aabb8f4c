"""Local test servers and cloud emulators, all bound to 127.0.0.1."""
