"""Customer service: registration, login, JWT issuing, sessions, profile."""
