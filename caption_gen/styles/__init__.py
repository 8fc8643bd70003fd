"""Style clustering → style prompts (seed 000 §3.3, DESIGN §4).

Modules: ``sources`` (texts to cluster), ``lexicons`` + ``neutralize`` (content neutralization),
``embed`` (CLIP text tower, cache, stylometric features), ``cluster`` (DBSCAN/HDBSCAN/KMeans+UPS,
stabilization), ``prompts`` (style instructions), ``bank`` (versioned style bank), ``report``
(inspector page), ``build`` (the end-to-end ``build_styles``).
"""
