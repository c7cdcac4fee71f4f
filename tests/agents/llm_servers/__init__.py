"""Real HTTP servers for the LLM adapter tests (started on 127.0.0.1 by the tests)."""
