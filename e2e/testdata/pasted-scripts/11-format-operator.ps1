#! expect: Info Desk has SharedMailbox
#! expect: 3 of 4 mailboxes (75.0%) are user mailboxes
$a = "Info Desk"
$b = (Get-Mailbox -Identity "Info Desk").RecipientTypeDetails
"{0} has {1}" -f $a, $b
$users = @(Get-Mailbox -RecipientTypeDetails UserMailbox).Count
$all = @(Get-Mailbox -ResultSize Unlimited).Count
"{0} of {1} mailboxes ({2:P1}) are user mailboxes" -f $users, $all, ($users / $all)
