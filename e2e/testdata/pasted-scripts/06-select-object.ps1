#! expect: first: akol,chris
#! expect: last: sean
#! expect: skip: Info Desk,sean
#! expect: unique: SharedMailbox,UserMailbox
$sorted = Get-Mailbox -ResultSize Unlimited | Sort-Object Name
"first: " + (($sorted | Select-Object -First 2 | ForEach-Object { $_.Name }) -join ",")
"last: " + ($sorted | Select-Object -Last 1 -ExpandProperty Name)
"skip: " + (($sorted | Select-Object -Skip 2 -Property Name | ForEach-Object Name) -join ",")
"unique: " + ((Get-Mailbox | Select-Object -ExpandProperty RecipientTypeDetails | Sort-Object | Select-Object -Unique) -join ",")
