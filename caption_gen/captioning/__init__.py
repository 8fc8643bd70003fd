"""The captioning engine: discovery → decode → batched generation → validation/retry → shards (DESIGN §3)."""
