"""galtaxa.cluster"""
