"""HTTP runtime shared by the generated reporting clients: transport, policies, converter, errors."""
