"""Inbox placement by seed mailboxes, the way GlockApps/Everest measure it: every pool sends a signed probe to
every seed (`monitoring.seeds`), a reader finds each probe over IMAP in INBOX or Junk, and the result is
exported as metrics next to the delivery ones. Delivery says the mail left us; placement says where it landed.
"""
