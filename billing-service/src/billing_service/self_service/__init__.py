"""self_service"""
