"""What every extractor shares: the rate limiter, the HTTP client with retries, reading a
list's next page while the one before it lands, the raw landing writer, incremental state,
and the run's statistics."""
