"""Tags and lifecycle stages: what describes a customer (conversation labels describe the conversation)."""
