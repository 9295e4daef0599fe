"""Shadow replay: shadow copies in, the shadow version's answer compared, metrics out."""
