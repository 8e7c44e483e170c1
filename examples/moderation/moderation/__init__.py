"""The moderation plugin's parts that are not hooks: its settings and word matcher (``rules``),
strike counts in the KV store (``strikes``) and the admin page's rendering (``page``).

plugin.py, the bundle's entry module, defines the ``Plugin`` and imports these.
"""
