"""One module per CLI command: ``add_parser(subparsers)`` defines it, ``run(args)`` runs it.

Modules import heavy dependencies inside ``run`` so ``seglite --help`` stays fast.
"""
