"""The 4P apps' governed runs, shared by the command line and the web console.

Each module reads through ``Governance`` (the governed batch read, governed cases) and hands
the app engines (``territoria.apps``) plain tables; the interfaces only present the results.
"""
