"""galtaxa.catalog"""
