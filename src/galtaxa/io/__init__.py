"""galtaxa.io"""
