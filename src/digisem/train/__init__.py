"""Training: one generic loop (:mod:`.loop`) and the recipes of each system family (:mod:`.amp`, ...)."""
