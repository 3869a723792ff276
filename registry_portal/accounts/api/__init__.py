"""REST API of accounts: organizations, members, teams, grants, the current user, tokens."""
