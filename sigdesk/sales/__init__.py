"""Sales: products, orders from carts, agents, imports and the API, and the Meta catalog."""
