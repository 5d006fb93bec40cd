"""convscope.embed"""
