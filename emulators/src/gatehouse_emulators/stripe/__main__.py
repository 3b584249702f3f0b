from gatehouse_emulators.stripe.app import main

main()
