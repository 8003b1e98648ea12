"""The review inbox: the frames most worth a human look, each with its reason, bounded in count and disk (docs/inbox.md)."""
