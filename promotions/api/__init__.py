"""REST API of promotions: policies with their rules, their actions, and the records."""
