"""The web console under /console/: server-rendered pages for users, org admins and
operators, signed in with a password, calling the same services as the API and the CLI."""
