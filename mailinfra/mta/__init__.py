"""MTA configuration rendered from the plan: Postfix + OpenDKIM and PowerMTA, one host at a time."""
