from mailinfra.suppression_service.service import main

main()
