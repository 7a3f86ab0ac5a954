"""What every extractor shares: the rate limiter, the HTTP client with retries, the raw
landing writer, incremental state, and the run's statistics."""
