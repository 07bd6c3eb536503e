"""Federated transfer learning (placeholder module)."""
