"""HTTP plumbing shared by every route: JSON responses, the error envelope, key gating."""
