"""Pure DNS planning: typed records, one formatter per record family, zone files."""
