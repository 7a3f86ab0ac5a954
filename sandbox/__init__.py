"""The sandbox: a seeded synthetic sales world with its ground truth, and local stand-ins of
the CRM and 1C APIs that serve it on loopback. Production code never imports it."""
