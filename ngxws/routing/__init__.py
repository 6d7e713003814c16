"""Request routing: which server, which location, which upstream peer (nginx's algorithms)."""
