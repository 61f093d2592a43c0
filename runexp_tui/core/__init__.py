"""Pure logic: no Textual or Rich import anywhere below this package (checked by tests)."""
