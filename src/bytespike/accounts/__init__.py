"""Users and the account endpoint that shows them their money."""
