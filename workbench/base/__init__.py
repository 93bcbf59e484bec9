"""The bottom layer: errors, atomic file writes, declared hyper-parameters, data and cache folders.

Nothing here imports torch or any other part of ganbench.
"""
