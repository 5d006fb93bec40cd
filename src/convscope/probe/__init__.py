"""convscope.probe"""
