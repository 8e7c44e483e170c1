# DO NOT EDIT: generated package marker (python/scripts/gen_proto.py).
