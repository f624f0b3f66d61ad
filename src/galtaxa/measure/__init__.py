"""galtaxa.measure"""
