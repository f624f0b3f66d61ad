"""galtaxa.encode"""
