"""Low-balance notification settings of the caller's paying wallet."""
