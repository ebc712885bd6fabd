"""Money movements: wallets, the double-entry ledger, holds, and the model catalog's prices."""
