"""Codecs between wire formats and numpy: the simple JSON form and the Open Inference Protocol v2.

The model never parses JSON; adapters never build tensors by hand.
"""
