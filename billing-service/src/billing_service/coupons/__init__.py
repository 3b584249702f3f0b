"""coupons and promotion codes"""
