"""Practice: quiz the vault's questions, remember the results, export them."""
