"""convscope.serve"""
