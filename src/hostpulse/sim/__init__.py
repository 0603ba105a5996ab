"""The simulator: realistic fake hosts pushing to a server (a client; it never imports server/)."""
