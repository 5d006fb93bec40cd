"""convscope.store"""
