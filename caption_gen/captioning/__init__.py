"""The captioning engine: discovery → decode → batched generation → validation/retry → shards (issue 3)."""
